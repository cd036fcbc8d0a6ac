/**
 * Readable display names (Chinese and English) for a catalogue whose category ids carry no
 * meaning, such as the synthetic population's `c<index>`. Ids never change (the model vocabulary
 * and every stored event use them); a name is only what a page shows. The most popular categories
 * get the most common real e-commerce categories, themed ones (baby, home) names of their theme.
 */

export interface DisplayName {
  zh: string;
  en: string;
}

export type DisplayLanguage = keyof DisplayName;

type Pair = readonly [zh: string, en: string];

/** Common marketplace categories, most frequent kinds first (they go to the most popular ids). */
const GENERAL: readonly Pair[] = [
  ['手机', 'Phones'], ['女装', "Women's clothing"], ['零食', 'Snacks'], ['男装', "Men's clothing"],
  ['美妆', 'Cosmetics'], ['女鞋', "Women's shoes"], ['笔记本电脑', 'Laptops'], ['护肤', 'Skin care'],
  ['运动鞋', 'Sneakers'], ['箱包', 'Bags'], ['耳机', 'Headphones'], ['饮料', 'Drinks'],
  ['内衣', 'Underwear'], ['小家电', 'Small appliances'], ['男鞋', "Men's shoes"], ['手表', 'Watches'],
  ['洗护', 'Hair & body care'], ['茶叶', 'Tea'], ['运动服', 'Sportswear'], ['平板电脑', 'Tablets'],
  ['数码配件', 'Digital accessories'], ['图书', 'Books'], ['饰品', 'Accessories'], ['宠物用品', 'Pet supplies'],
  ['户外装备', 'Outdoor gear'], ['相机', 'Cameras'], ['香水', 'Perfume'], ['生鲜', 'Fresh food'],
  ['粮油', 'Rice & oil'], ['酒类', 'Wine & spirits'], ['咖啡', 'Coffee'], ['保健品', 'Supplements'],
  ['电子游戏', 'Video games'], ['智能手表', 'Smartwatches'], ['眼镜', 'Glasses'], ['帽子', 'Hats'],
  ['围巾', 'Scarves'], ['袜子', 'Socks'], ['牛仔裤', 'Jeans'], ['连衣裙', 'Dresses'],
  ['羽绒服', 'Down jackets'], ['T恤', 'T-shirts'], ['衬衫', 'Shirts'], ['毛衣', 'Sweaters'],
  ['外套', 'Coats'], ['钱包', 'Wallets'], ['双肩包', 'Backpacks'], ['行李箱', 'Suitcases'],
  ['口红', 'Lipstick'], ['面膜', 'Face masks'], ['防晒', 'Sunscreen'], ['洗发水', 'Shampoo'],
  ['牙膏', 'Toothpaste'], ['纸巾', 'Tissues'], ['洗衣液', 'Laundry detergent'], ['文具', 'Stationery'],
  ['乐器', 'Musical instruments'], ['玩具', 'Toys'], ['自行车', 'Bicycles'], ['健身器材', 'Fitness equipment'],
  ['瑜伽用品', 'Yoga gear'], ['泳衣', 'Swimwear'], ['渔具', 'Fishing tackle'], ['露营', 'Camping'],
  ['汽车用品', 'Car accessories'], ['电动车', 'E-bikes'], ['显示器', 'Monitors'], ['键盘鼠标', 'Keyboards & mice'],
  ['打印机', 'Printers'], ['路由器', 'Routers'], ['存储卡', 'Memory cards'], ['充电宝', 'Power banks'],
  ['音箱', 'Speakers'], ['电视', 'Televisions'], ['冰箱', 'Fridges'], ['洗衣机', 'Washing machines'],
  ['空调', 'Air conditioners'], ['电饭煲', 'Rice cookers'], ['咖啡机', 'Coffee machines'], ['吹风机', 'Hair dryers'],
  ['剃须刀', 'Shavers'], ['电动牙刷', 'Electric toothbrushes'], ['坚果', 'Nuts'], ['巧克力', 'Chocolate'],
  ['方便面', 'Instant noodles'], ['水果', 'Fruit'], ['海鲜', 'Seafood'], ['肉类', 'Meat'],
  ['乳制品', 'Dairy'], ['调味品', 'Condiments'], ['鲜花', 'Flowers'], ['绿植', 'House plants'],
  ['手机壳', 'Phone cases'], ['游戏机', 'Game consoles'], ['无人机', 'Drones'], ['投影仪', 'Projectors'],
  ['珠宝', 'Jewellery'], ['腰带', 'Belts'], ['手套', 'Gloves'], ['睡衣', 'Pyjamas'],
  ['汉服', 'Hanfu'], ['旗袍', 'Qipao'], ['运动裤', 'Track pants'], ['卫衣', 'Hoodies'],
  ['拖鞋', 'Slippers'], ['高跟鞋', 'High heels'], ['靴子', 'Boots'], ['凉鞋', 'Sandals'],
  ['美甲', 'Nail care'], ['化妆工具', 'Makeup tools'], ['男士护理', "Men's grooming"], ['隐形眼镜', 'Contact lenses'],
  ['非处方药', 'Pharmacy'], ['医疗器械', 'Medical devices'], ['电子书阅读器', 'E-readers'], ['漫画', 'Comics'],
  ['教材', 'Textbooks'], ['手工材料', 'Craft supplies'], ['收藏品', 'Collectibles'], ['电竞外设', 'Gaming peripherals'],
];

/** Categories a young child at home drives (the synthetic population's baby theme). */
const BABY: readonly Pair[] = [
  ['奶粉', 'Infant formula'], ['纸尿裤', 'Diapers'], ['婴儿车', 'Strollers'], ['童装', "Kids' clothing"],
  ['童鞋', "Kids' shoes"], ['奶瓶', 'Baby bottles'], ['益智玩具', 'Educational toys'], ['婴儿床', 'Cribs'],
  ['辅食', 'Baby food'], ['孕妇装', 'Maternity wear'], ['安全座椅', 'Child car seats'], ['早教', 'Early learning'],
  ['绘本', "Picture books"], ['婴儿洗护', 'Baby care'], ['湿巾', 'Baby wipes'], ['儿童餐具', "Kids' tableware"],
  ['学步车', 'Baby walkers'], ['儿童自行车', "Kids' bikes"],
];

/** Categories a recent move drives (the synthetic population's home theme). */
const HOME: readonly Pair[] = [
  ['家具', 'Furniture'], ['床上用品', 'Bedding'], ['厨具', 'Cookware'], ['灯具', 'Lighting'],
  ['收纳', 'Storage'], ['窗帘', 'Curtains'], ['地毯', 'Rugs'], ['装饰画', 'Wall art'],
  ['卫浴', 'Bathroom fittings'], ['五金工具', 'Tools & hardware'], ['沙发', 'Sofas'], ['床垫', 'Mattresses'],
  ['餐具', 'Tableware'], ['清洁用品', 'Cleaning supplies'], ['智能家居', 'Smart home'], ['门锁', 'Door locks'],
  ['涂料', 'Paint'], ['瓷砖', 'Tiles'],
];

/** Prefixes that turn a used-up list's names into new, still plausible ones ("Imported tea"). */
const VARIANTS: readonly Pair[] = [['进口', 'Imported'], ['二手', 'Second-hand'], ['礼盒装', 'Gift-boxed'], ['定制', 'Custom']];

function lowerFirst(text: string): string {
  // "Phones" -> "phones", but an acronym-like start ("TVs") keeps its case.
  return text.length > 1 && text[1] === text[1]!.toLowerCase() ? text[0]!.toLowerCase() + text.slice(1) : text;
}

/** The k-th name of a list: its own names first, then with each variant prefix, then numbered. */
function nthName(list: readonly Pair[], k: number): DisplayName {
  const [zh, en] = list[k % list.length]!;
  const round = Math.floor(k / list.length);
  if (round === 0) return { zh, en };
  const variant = VARIANTS[(round - 1) % VARIANTS.length]!;
  const lap = Math.floor((round - 1) / VARIANTS.length);
  const suffix = lap === 0 ? '' : ` ${lap + 1}`;
  return { zh: `${variant[0]}${zh}${suffix}`, en: `${variant[1]} ${lowerFirst(en)}${suffix}` };
}

export interface CatalogueLayout {
  /** Category ids, by index. */
  ids: readonly string[];
  /** Category indices from the most to the least popular. */
  byPopularity: readonly number[];
  /** Indices of the baby-themed and home-themed categories. */
  baby?: readonly number[];
  home?: readonly number[];
}

/** One distinct display name per category id. */
export function nameCategories(layout: CatalogueLayout): Map<string, DisplayName> {
  const names = new Map<string, DisplayName>();
  const baby = new Set(layout.baby ?? []);
  const home = new Set(layout.home ?? []);
  const next = { general: 0, baby: 0, home: 0 };
  for (const index of layout.byPopularity) {
    const id = layout.ids[index];
    if (id === undefined) throw new RangeError(`"byPopularity" names category ${index}, but there are ${layout.ids.length}`);
    const name = baby.has(index) ? nthName(BABY, next.baby++) : home.has(index) ? nthName(HOME, next.home++) : nthName(GENERAL, next.general++);
    names.set(id, name);
  }
  return names;
}
